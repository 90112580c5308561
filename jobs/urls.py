from django.urls import path

from jobs import simulated_ai

app_name = "jobs"

urlpatterns = [
    path("demo/ai-matching/health", simulated_ai.health, name="simulated-ai-health"),
    path("demo/ai-matching/match", simulated_ai.match, name="simulated-ai-match"),
]
