import NixCore

extension StorePath {
    /// A valid `/nix/store` path called `name`, the same for the same name: for tests that need a
    /// store path, not what it holds.
    public static func named(_ name: String) -> StorePath {
        do {
            return try StorePath.text(name: name, contents: name)
        } catch {
            fatalError("a test names a store path '\(name)' that cannot be one: \(error)")
        }
    }

    /// A path the test spells out and knows to be valid (a mistake in it stops the test run at once).
    public static func known(_ text: String) -> StorePath {
        do {
            return try StorePath(parsing: text)
        } catch {
            fatalError("a test spells out '\(text)' as a store path: \(error)")
        }
    }
}
