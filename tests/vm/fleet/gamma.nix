# gamma: evaluated and built on the deployer (local-evaluation).
{ }
