public enum NixCorePlaceholder {}
