import Foundation

/// Why a file given on the command line could not be read.
struct InputFileError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "cannot read '\(path)': \(reason)" }
}

/// An error a command reports as is, with no further detail.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
