from pipworks_platform.db.alembic_env import run_env

run_env()
