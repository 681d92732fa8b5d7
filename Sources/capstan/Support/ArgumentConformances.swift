import ArgumentParser
import CapstanModel
import Logging

extension TokenKind: ExpressibleByArgument {}

extension Logger.Level: @retroactive ExpressibleByArgument {}
