import Foundation

/// What kind of configuration a store path is, by the files it contains, and how it is activated.
enum ActivationKind: Equatable {
    /// `nixos-version`: `bin/switch-to-configuration ACTION`.
    case nixos
    /// `darwin-version`: `sw/bin/darwin-rebuild activate`.
    case darwin
    /// `hm-version`: `activate`.
    case homeManager
    /// Anything else: switching the profile is all.
    case none

    init(of storePath: String) {
        let fm = FileManager.default
        if fm.fileExists(atPath: storePath + "/nixos-version") {
            self = .nixos
        } else if fm.fileExists(atPath: storePath + "/darwin-version") {
            self = .darwin
        } else if fm.fileExists(atPath: storePath + "/hm-version") {
            self = .homeManager
        } else {
            self = .none
        }
    }

    /// The command activating `storePath`; `action` only matters to NixOS.
    func command(_ storePath: String, action: String) -> [String] {
        switch self {
        case .nixos: [storePath + "/bin/switch-to-configuration", action]
        case .darwin: [storePath + "/sw/bin/darwin-rebuild", "activate"]
        case .homeManager: [storePath + "/activate"]
        case .none: []
        }
    }
}
