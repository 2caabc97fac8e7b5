"""A real Apache Kafka 3.9 (KRaft) broker, or a small cluster, on loopback: for the tests and
``kuntur broker --kafka``.

The jars come from Maven Central once, through ``make kafka`` (``stream/dev/kafka.pom.xml``
copied into ``.cache/kafka/libs``); this module only starts ``java -cp 'libs/*' kafka.Kafka``.
Each node runs broker and controller in one process (combined mode), with its own data
directory, formatted on first start (``kafka-storage format``) and kept across a
:meth:`KafkaNode.stop` / :meth:`KafkaNode.start`, so a test can stop a broker and bring it
back with its data. Logs stay in the data directory (``server.log``); a failed start
raises :class:`~stream.errors.BrokerError` with the log's tail.

>>> with KafkaCluster(nodes=1) as kafka:           # doctest: +SKIP
...     print(kafka.bootstrap)                     # 127.0.0.1:<free port>
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from stream.dev.broker import ensure_port_free, free_port
from stream.errors import BrokerError

__all__ = ["DEFAULT_LIBS", "KafkaCluster", "KafkaNode", "kafka_libs"]

#: librdkafka's log while a broker starts is "connection refused" noise: kept out of the way.
_quiet = logging.getLogger("kuntur.kafka-probe")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False

#: Where ``make kafka`` puts the server's jars (git-ignored).
DEFAULT_LIBS = Path(__file__).resolve().parents[2] / ".cache" / "kafka" / "libs"

#: JVM options: a small heap and the serial collector suit a test broker on 2 cores.
JVM_OPTS = ("-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")

LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
"""


def kafka_libs(libs: str | Path | None = None) -> Path:
    """The directory of Kafka's jars; :class:`BrokerError` with the fix if it is missing."""
    path = Path(libs) if libs else DEFAULT_LIBS
    if not any(path.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"no Apache Kafka jars in {path}: run `make kafka` (fetches them from Maven Central once)")
    if shutil.which("java") is None:
        raise BrokerError("Apache Kafka needs a Java runtime (OpenJDK 17): apt-get install openjdk-17-jre-headless")
    return path


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaNode:
    """One Kafka process (broker + controller). Built by :class:`KafkaCluster`."""

    def __init__(self, node_id: int, host: str, port: int, controller_port: int, data_dir: Path, libs: Path) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.data_dir = data_dir
        self.libs = libs
        self.log_path = data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    def write_config(self, voters: str, replication: int, min_isr: int) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.address}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": 1,
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            "log.segment.bytes": 64 * 1024 * 1024,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "num.recovery.threads.per.data.dir": 1,
            "controlled.shutdown.enable": "true",
        }
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j.properties").write_text(LOG4J)

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            *JVM_OPTS,
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def format(self, cluster: str) -> None:
        """``kafka-storage format``, once: a formatted directory keeps its data on restart."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cmd = self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster}", f"--config={self.config_path}")
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise BrokerError(f"kafka-storage format failed ({done.returncode}): {done.stderr.decode()[-2000:]}")

    def start(self) -> KafkaNode:
        """Start the process (returns at once; :meth:`KafkaCluster.wait_ready` waits)."""
        if self.running():
            return self
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config_path)), stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exited(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL after ``timeout``."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class KafkaCluster:
    """``nodes`` Apache Kafka processes on free loopback ports, one KRaft quorum.

    Topics get ``replication = min(nodes, 3)`` replicas and ``min.insync.replicas =
    replication - 1`` (at least 1) by default. ``data_dir`` is kept after :meth:`stop`
    when given (a temporary one is removed unless ``keep`` is set, e.g. a test failed).
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        data_dir: str | Path | None = None,
        libs: str | Path | None = None,
        replication: int | None = None,
        min_isr: int | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.libs = kafka_libs(libs)
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="kuntur-kafka-"))
        self.keep = not self._own_dir
        self.replication = replication or min(nodes, 3)
        self.min_isr = min_isr or max(1, self.replication - 1)
        self.cluster_id = cluster_id()
        self.nodes = [
            KafkaNode(
                i + 1,
                host,
                port if (port and i == 0) else free_port(host),
                free_port(host),
                self.data_dir / f"node-{i + 1}",
                self.libs,
            )
            for i in range(nodes)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    def start(self, timeout: float = 90.0) -> KafkaCluster:
        for node in self.nodes:
            ensure_port_free(node.host, node.port)
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        for node in self.nodes:
            node.write_config(voters, self.replication, self.min_isr)
            node.format(self.cluster_id)
        for node in self.nodes:
            node.start()
        try:
            self.wait_ready(timeout)
        except BrokerError:
            self.keep = True
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 90.0, nodes: int | None = None) -> float:
        """Wait until the cluster answers metadata with ``nodes`` live brokers (all by
        default) and accepts a topic; returns the seconds waited."""
        from confluent_kafka.admin import AdminClient

        want = len([n for n in self.nodes if n.running()]) if nodes is None else nodes
        started = time.monotonic()
        deadline = started + timeout
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "logger": _quiet}
        admin = AdminClient(config)
        last = "no answer"
        while time.monotonic() < deadline:
            for node in self.nodes:
                code = node.exited()
                if code is not None and node._proc is not None:
                    raise BrokerError(f"Kafka node {node.node_id} exited with {code}:\n{node.log_tail()}")
            try:
                meta = admin.list_topics(timeout=2)
                if len(meta.brokers) >= want and meta.controller_id >= 0:
                    return time.monotonic() - started
                last = f"{len(meta.brokers)} of {want} brokers"
            except Exception as exc:
                last = str(exc)
            time.sleep(0.2)
        tails = "\n".join(f"--- node {n.node_id} ---\n{n.log_tail(2000)}" for n in self.nodes)
        raise BrokerError(f"Kafka not ready after {timeout:.0f}s ({last}); logs in {self.data_dir}\n{tails}")

    def running(self) -> bool:
        return any(n.running() for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        """The node with Kafka id ``node_id`` (1-based, as in the brokers' metadata)."""
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no Kafka node {node_id} in this cluster (ids 1..{len(self.nodes)})")

    def kill(self, node_id: int) -> KafkaNode:
        """SIGKILL one node (a crashed broker: no controlled shutdown, leadership moves only
        when the controller notices). :meth:`KafkaNode.start` brings it back with its data."""
        node = self.node(node_id)
        node.kill()
        return node

    def leaders(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """Partition → node id of its leader (-1 while it has none), from a live node's metadata."""
        from confluent_kafka.admin import AdminClient

        live = ",".join(n.address for n in self.nodes if n.running()) or self.bootstrap
        config: dict[str, Any] = {"bootstrap.servers": live, "logger": _quiet}
        meta = AdminClient(config).list_topics(topic, timeout=timeout).topics[topic]
        if meta.error is not None:
            raise BrokerError(f"no metadata for topic {topic!r}: {meta.error}")
        return {p: info.leader for p, info in sorted(meta.partitions.items())}

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._own_dir and not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        if t is not None:
            self.keep = True
        self.stop()

