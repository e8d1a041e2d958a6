"""Errors raised by every backend, whatever the Kafka client underneath.

Each backend translates its client's exceptions into this tree, so the processor catches one set of
names and the message always says which broker, topic or id was involved::

    BackendError                    anything a Kafka client reported that has no better name
    ├── ConfigurationError          a bad setting, an unknown backend, a missing optional extra
    ├── BrokerUnavailableError      no broker answered in time (wrong address, broker down)
    ├── AuthenticationError         the broker refused the credentials (SASL/SSL)
    ├── DeliveryError               ``Producer.flush`` found records the broker did not acknowledge
    ├── CommitFailedError           an offset commit was refused (the group rebalanced meanwhile)
    ├── InstanceFencedError         fatal: another member joined with this one's group instance id; stop
    └── TransactionError            a transactional operation failed
        ├── TransactionAbortedError abortable: call ``abort_transaction`` and redo the batch
        └── ProducerFencedError     fatal: another instance owns this transactional id; stop

Examples
--------
>>> issubclass(ProducerFencedError, TransactionError) and issubclass(TransactionError, BackendError)
True
"""

from __future__ import annotations


class BackendError(Exception):
    """Base class of every error a backend raises."""


class ConfigurationError(BackendError):
    """A setting has a value the backend cannot use; the message names the setting."""


class BrokerUnavailableError(BackendError):
    """No broker of ``bootstrap_servers`` answered within the connection timeout."""


class AuthenticationError(BackendError):
    """The broker refused the SASL or SSL credentials (wrong user, password or certificate)."""


class DeliveryError(BackendError):
    """At least one produced record was not acknowledged; the outputs of the batch are not durable."""


class CommitFailedError(BackendError):
    """The group coordinator refused an offset commit, usually because the group rebalanced."""


class InstanceFencedError(BackendError):
    """Another consumer joined the group with this one's ``group_instance_id`` (static membership).

    Unlike :class:`CommitFailedError` the batch must not be redone: this member is no longer in the
    group, and whatever it publishes now duplicates the newcomer's work. Stop.
    """


class TransactionError(BackendError):
    """A transactional operation failed."""


class TransactionAbortedError(TransactionError):
    """The transaction cannot commit; abort it and process the batch again."""


class ProducerFencedError(TransactionError):
    """A newer producer with the same transactional id exists; this one must close."""
