import CapstanServices

/// The last `Authorization` value a connection sent and the hash of its token: a client sends the
/// same one with every request, and parsing and hashing it again each time was most of what a
/// private cache's token cost the narinfo fast path. Only the hash is looked up, in the tokens' memo,
/// on every request, so a revocation still counts at once. Lives as long as its connection.
struct ConnectionCredentials {
    private var authorization: String?
    private var secretHash: String?

    /// The hash of the token `authorization` carries (Bearer, or Nix's basic auth); nil when it carries none.
    mutating func secretHash(ofAuthorization authorization: String) -> String? {
        if authorization == self.authorization, let secretHash { return secretHash }
        guard let secret = Credentials.secret(fromAuthorization: authorization) else { return nil }
        let hash = TokenSecret.hash(secret)
        self.authorization = authorization
        secretHash = hash
        return hash
    }
}
