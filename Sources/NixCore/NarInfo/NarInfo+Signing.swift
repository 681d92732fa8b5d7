extension NarInfo {
    /// Adds this key's signature of the fingerprint (once; ed25519 signatures are deterministic).
    public mutating func sign(with key: NixSecretKey) {
        let signature = key.sign(fingerprint: fingerprint)
        if !sigs.contains(signature) { sigs.append(signature) }
    }

    /// True when some signature is valid for one of the trusted keys, as `require-sigs` demands.
    public func verify(trusting keys: [NixPublicKey]) -> Bool {
        let fingerprint = fingerprint
        return sigs.contains { sig in keys.contains { $0.verify(fingerprint: fingerprint, signature: sig) } }
    }
}
