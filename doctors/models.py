"""Doctor onboarding, verification, profiles, specializations and search (Step 2). Models arrive with that step."""
