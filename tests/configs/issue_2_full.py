"""The same ecosystem as issue_2_full.toml, written in Python."""

from omnitron.config.define import define_ecosystem

API_PORT = 3001

ecosystem = define_ecosystem(
    daemon={
        "health_host": "127.0.0.1",
        "health_port": 9800,
        "log_level": "debug",
        "log_format": "json",
        "shutdown_timeout": "30s",
        "on_fatal": "exit",
        "memory_check_interval": 2,
        "logs": {"max_size": "1MiB", "keep": 3},
    },
    apps=[
        {"name": "migrate", "command": "python -c 'print(1)'", "restart": "never"},
        {
            "name": "api",
            "bootstrap": "../apps/ready.py",
            "env": {"LOG_LEVEL": "info", "GREETING": "${OMNITRON_TEST_GREETING:-hello}"},
            "env_file": "issue_2.env",
            "secrets": ["JWT_SECRET"],
            "instances": 2,
            "port": API_PORT,
            "restart": "on-failure",
            "min_uptime": "5s",
            "max_restarts": 3,
            "backoff": {"initial": "100ms", "max": "30s", "factor": 2.0},
            "stop_signal": "SIGINT",
            "kill_timeout": "10s",
            "max_memory": "512MB",
            "depends_on": {"migrate": "completed"},
            "health": {
                "http": "http://127.0.0.1:${PORT}/health",
                "interval": "5s",
                "timeout": "2s",
                "failure_threshold": 3,
                "start_period": "10s",
            },
            "liveness": {"tcp": "${PORT}", "interval": 10, "start_period": "30s"},
        },
        {
            "name": "worker",
            "command": ["python", "-u", "-c", "import time; time.sleep(60)"],
            "depends_on": ["api"],
            "health": {"exec": "true"},
        },
    ],
    infra={"migrate": ["python -c 'print(2)'"]},
)
