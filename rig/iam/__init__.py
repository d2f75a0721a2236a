"""AWS's permission model in the tests: moto with IAM enforced, and resource scoping checked.

moto 5 enforces IAM per action only (every request is matched against Resource ``*``), so this
package adds what it lacks. ``server`` runs moto in its own process with enforcement on and
records every request as an (action, resource ARNs, context) entry (``arns`` derives the ARNs
the request touches, the way IAM's authorization would see them); ``emulator`` starts it and hands
out credentials (an admin for the tests' own inspection, an IAM user holding a given policy, an
assumed role); ``policy`` evaluates recorded entries against the real policy documents with
resources and conditions, which moto cannot.
"""
