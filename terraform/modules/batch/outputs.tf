output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition (RunTask with the family starts its latest ACTIVE revision)."
  value       = aws_ecs_task_definition.this.family
}

output "task_definition_arn" {
  description = "ARN of the current task definition revision."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family_arn" {
  description = "ARN pattern covering every revision of the family (for ecs:RunTask)."
  value       = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.this.family}:*"
}

output "task_arn_pattern" {
  description = "ARN pattern of the cluster's tasks (for ecs:TagResource at RunTask)."
  value       = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.this.name}/*"
}

output "container_name" {
  description = "Name of the batch-job container."
  value       = var.container_name
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the execution role."
  value       = aws_iam_role.execution.arn
}

output "security_group_id" {
  description = "Security group the tasks run with."
  value       = aws_security_group.task.id
}

output "repository_url" {
  description = "URL of the ECR repository (push batch-job images here)."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "ARN of the ECR repository."
  value       = aws_ecr_repository.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the tasks."
  value       = aws_cloudwatch_log_group.this.name
}
