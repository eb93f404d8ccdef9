"""Blog, pages and SEO (Step 9). Models arrive with that step."""
