import Foundation
import NixCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a Nix profile points at.
public enum ProfileTarget {
    /// The store path the profile symlink (through its generation link) resolves to; nil if there is no profile yet.
    public static func storePath(ofProfile profilePath: String) -> StorePath? {
        guard let resolved = realpath(profilePath, nil) else { return nil }
        defer { free(resolved) }
        let path = String(cString: resolved)
        guard path.hasPrefix(StorePath.defaultStoreDir + "/") else { return nil }
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard components.count >= 3 else { return nil }
        return try? StorePath(parsing: "/" + components.prefix(3).joined(separator: "/"))
    }
}
