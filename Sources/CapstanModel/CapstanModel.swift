import NixCore
