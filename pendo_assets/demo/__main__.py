from pendo_assets.demo.run import main

raise SystemExit(main())
