import Foundation
import NixCore

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

    init(of storePath: StorePath) {
        let fm = FileManager.default
        let root = storePath.path
        if fm.fileExists(atPath: root + "/nixos-version") {
            self = .nixos
        } else if fm.fileExists(atPath: root + "/darwin-version") {
            self = .darwin
        } else if fm.fileExists(atPath: root + "/hm-version") {
            self = .homeManager
        } else {
            self = .none
        }
    }

    /// The command activating `storePath`; `action` only matters to NixOS.
    func command(_ storePath: StorePath, action: String) -> [String] {
        let root = storePath.path
        return switch self {
        case .nixos: [root + "/bin/switch-to-configuration", action]
        case .darwin: [root + "/sw/bin/darwin-rebuild", "activate"]
        case .homeManager: [root + "/activate"]
        case .none: []
        }
    }
}
