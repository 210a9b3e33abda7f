"""The gateway's own records about people: users, API tokens and the audit log.

They are a store of their own under $CLAWPEN_HOME (never fields on agents), so GitOps on agents and
user administration never touch the same files. In Kubernetes mode the gateway keeps them on its
volume the same way: kubectl users are Kubernetes RBAC and are not these users.
"""
