"""Database access of the ib service: SQL over the tables the migrations create."""
