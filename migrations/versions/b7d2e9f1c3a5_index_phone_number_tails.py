"""index phone number tails (an unknown caller's likely matches)

Revision ID: b7d2e9f1c3a5
Revises: a3f8c1d2e4b6
Create Date: 2026-11-27 04:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d2e9f1c3a5'
down_revision = 'a3f8c1d2e4b6'
branch_labels = None
depends_on = None


def upgrade():
    # The same expression as contact_center.customers.models.phone_tail (last 7 characters),
    # spelt so that PostgreSQL and SQLite both index it.
    op.create_index(
        'ix_customer_identities_phone_tail',
        'customer_identities',
        ['kind', sa.text('substr(value, length(value) - 6)')],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_customer_identities_phone_tail', table_name='customer_identities')
