"""One Pendo budget per destination, shared beyond one process.

A destination (base URL and credential fingerprint) allows so many requests a second and one
track event per visitor a second, whoever sends them. `budget_for_state` picks where that
budget lives: in PostgreSQL with a PostgreSQL state database (every host shares it), else in a
private directory of this host (every process of the host shares it).
"""

from .host_budget import HostBudget
from .postgres_budget import PostgresBudget
from .selection import budget_for_state
from .visitor_pacing import VisitorPacing

__all__ = ["HostBudget", "PostgresBudget", "VisitorPacing", "budget_for_state"]
