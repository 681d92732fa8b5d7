import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether a NixOS machine runs the kernel of its deployed configuration: it must reboot when the
/// booted system's kernel, initrd or kernel modules differ from the deployed toplevel's.
public enum RebootRequirement {
    /// What only a reboot changes, as links in a NixOS toplevel.
    public static let bootComponents = ["kernel", "initrd", "kernel-modules"]

    /// nil when there is nothing to compare: no booted system (not NixOS, or not booted from Nix),
    /// no deployed configuration, or a toplevel without a kernel (a Home Manager or plain profile).
    public static func needsReboot(bootedSystem: String, toplevel: String?) -> Bool? {
        guard let toplevel, let booted = resolve(bootedSystem) else { return nil }
        let pairs = bootComponents.map { (resolve(booted + "/" + $0), resolve(toplevel + "/" + $0)) }
        guard pairs.contains(where: { $0.1 != nil }) else { return nil }
        return pairs.contains { $0.0 != $0.1 }
    }

    /// The path with every link followed; nil when it does not exist.
    public static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
