public enum CompressionPlaceholder {}
