"""interactions: a covering index by author

The fanout computes each follower's affinity with the author from `interactions`; with an
index on author_id alone that read every matching heap page (2 664 pages for the seed's
10 000-follower author, per batch). Covering (author_id, user_id) with the counters makes it
an index-only scan. Built concurrently: the table takes writes on every like and comment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_interactions_author_user",
            "interactions",
            ["author_id", "user_id"],
            postgresql_include=["likes", "comments"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_interactions_author",
            table_name="interactions",
            postgresql_concurrently=True,
            if_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_interactions_author",
            "interactions",
            ["author_id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_interactions_author_user",
            table_name="interactions",
            postgresql_concurrently=True,
            if_exists=True,
        )
