"""The unit of work lives in `app.reconcile.uow` (health checks use it too); the services
keep importing it from here."""

from app.reconcile.uow import UnitOfWork, Work

__all__ = ["UnitOfWork", "Work"]
