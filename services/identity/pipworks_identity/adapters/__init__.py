"""Infrastructure behind the domain: tables, repositories, hashing, TOTP, QR and JWTs."""
