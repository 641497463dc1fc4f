"""Version-aware access to Cloudify Managers 3.4.2 - 7.0 over cloudify_rest_client."""
