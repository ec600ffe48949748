"""Federation (DESIGN §6): upstream OpenID providers, routing by email domain, linking.

idp is a relying party of each upstream and does what RFC 9700 asks of a client:
fresh state, nonce and PKCE per attempt, one callback per upstream, the RFC 9207
``iss`` check, and a fully validated ID token.
"""
