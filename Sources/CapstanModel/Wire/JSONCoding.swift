import Foundation
import NixCore

/// The one JSON configuration of Capstan's wire: the agent channel, the API, state files and
/// webhooks all write dates as ISO 8601, and store paths and URLs as people read them (no `\/`);
/// store paths are read as `StorePath`s of `/nix/store`.
extension JSONEncoder {
    public static var capstan: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    public static var capstan: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        // Capstan's caches and agents know one store directory; a path elsewhere is refused as it is read.
        decoder.userInfo[.nixStoreDir] = StorePath.defaultStoreDir
        return decoder
    }
}
