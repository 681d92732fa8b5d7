import CapstanModel
import Foundation

enum ByteFormat {
    static func string(_ bytes: Int64) -> String { ByteSize(bytes: bytes).description }
}
