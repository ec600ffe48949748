"""Interoperability: idp against relying parties it did not write (openid-client, Authlib)."""
