-- The design document's DDL, verbatim (../shared/seeds/000_0469ed3b8bdaaec9.txt, "Data Models"),
-- preceded by the smallest `jobs` table its foreign keys need. The schema tests load this into a
-- scratch schema and compare it with what the migrations built.
CREATE TABLE jobs (id UUID PRIMARY KEY DEFAULT gen_random_uuid());

CREATE TABLE job_execution_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES jobs(id),
    event_type VARCHAR(50) NOT NULL, -- 'started', 'progress', 'error', 'completed'
    timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    status VARCHAR(20) NOT NULL,
    progress INTEGER DEFAULT 0,
    message TEXT,
    details JSONB,
    error_details JSONB,
    execution_time_ms INTEGER,
    memory_usage_mb INTEGER,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE system_health_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    metric_type VARCHAR(50) NOT NULL, -- 'database', 'api', 'resource', 'job_queue'
    metric_name VARCHAR(100) NOT NULL,
    metric_value DECIMAL(10,2) NOT NULL,
    status VARCHAR(20) NOT NULL, -- 'healthy', 'warning', 'critical'
    details JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE alert_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_type VARCHAR(50) NOT NULL,
    severity VARCHAR(20) NOT NULL, -- 'info', 'warning', 'error', 'critical'
    title VARCHAR(200) NOT NULL,
    message TEXT NOT NULL,
    job_id UUID REFERENCES jobs(id),
    triggered_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    resolved_at TIMESTAMPTZ,
    recipients TEXT[],
    notification_sent BOOLEAN DEFAULT FALSE,
    escalated BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE job_retry_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES jobs(id),
    attempt_number INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMPTZ,
    status VARCHAR(20) NOT NULL, -- 'success', 'failed', 'cancelled'
    error_message TEXT,
    retry_delay_seconds INTEGER,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
