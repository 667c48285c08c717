output "schedule_arn" {
  description = "ARN of the schedule."
  value       = aws_scheduler_schedule.this.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue of failed scheduled invocations."
  value       = aws_sqs_queue.dlq.id
}
