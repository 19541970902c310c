"""Running the Gherkin scenarios: the pytest plugin, the scenario catalogue and the results tree."""
