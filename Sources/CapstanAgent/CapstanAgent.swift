/// The deployment agent: connection loop and deployment runner.
public enum CapstanAgentModule {}
