"""event outbox

Graph's events are written in the transaction of the change they announce and published
after it commits (zapcore.outbox).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
    )
    op.create_index("ix_event_outbox_created", "event_outbox", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_outbox_created", table_name="event_outbox")
    op.drop_table("event_outbox")
