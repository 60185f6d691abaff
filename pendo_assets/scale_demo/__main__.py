from pendo_assets.scale_demo.run import main

raise SystemExit(main())
