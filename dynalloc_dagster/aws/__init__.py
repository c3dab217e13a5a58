"""Running on AWS: the EC2 run launcher, the user data of its instances, the IAM policies
of the launcher and the workers, and the SOC2 pre-deployment checker (docs/aws.md).

``python -m dynalloc_dagster.aws policy ...`` prints the IAM policies;
``python -m dynalloc_dagster.aws soc2 ...`` checks an account."""
