"""post versions

Every change to a post row bumps its version, by a trigger so that no code path can forget
it: the post cards in Redis (services/feed/posts/cards.py) keep the highest version they
were offered, so a card read before a change can never overwrite one written after it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "posts", sa.Column("version", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.execute(
        """
        CREATE FUNCTION bump_post_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER posts_bump_version BEFORE UPDATE ON posts "
        "FOR EACH ROW EXECUTE FUNCTION bump_post_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER posts_bump_version ON posts")
    op.execute("DROP FUNCTION bump_post_version()")
    op.drop_column("posts", "version")
