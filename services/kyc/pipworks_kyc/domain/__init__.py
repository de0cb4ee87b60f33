"""The KYC domain: requirement templates, applications, documents and risk. Pure Python."""
