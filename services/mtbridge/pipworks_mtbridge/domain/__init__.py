"""The bridge's domain: pure Python rules about accounts, money, deals and margin."""
