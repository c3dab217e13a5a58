"""Running on AWS: the EC2 run launcher, the user data of its instances, the reaper of
leaked instances, the IAM policies of the launcher and the workers, the preflight check of
a deployment, the SOC2 pre-deployment checker and the deployment's CloudFormation
template (docs/aws.md).

``python -m dynalloc_dagster.aws policy ...`` prints the IAM policies;
``python -m dynalloc_dagster.aws preflight ...`` checks a deployment with its roles;
``python -m dynalloc_dagster.aws soc2 ...`` checks an account (also
``utils/soc2_compliance_checker.py``); ``python -m dynalloc_dagster.aws cloudformation``
renders the template."""
