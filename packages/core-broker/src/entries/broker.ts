// @rocketnest/core-broker/broker: run a broker. Embed it in a process (InProcessTransport hands
// it to the clients of the main entry), serve it over TCP (BrokerServer), or run a cluster with
// name servers (NameServer). `rocketnest broker` does the same from the command line.
export { Broker } from '../broker/broker';
export { DEFAULT_BROKER_NAME, DEFAULT_QUEUE_COUNT } from '../broker/broker-options';
export type { BrokerOptions, BrokerEvent } from '../broker/broker-options';
export type { TopicInput } from '../broker/topic-registry';
export { Permission } from '../message/protocol';
export type { TransactionEvent } from '../broker/transaction-service';
export { InProcessTransport } from '../client/in-process-transport';

// Stores: durable on disk (FileStore) or in memory (MemoryStore, same engine).
export type { MessageStore } from '../store/message-store';
export { FileStore } from '../store/file-store';
// Replication: a master's HA port and a slave's link to it (docs/replication.md).
export { HaMaster, type HaMasterOptions, type ReplicaStatus, type SlaveLink } from '../store/ha-master';
export { HaSlave, type HaSlaveOptions, type HaSlaveState } from '../store/ha-slave';
export type { RecoveryReport } from '../store/file-store';
export type { DiskPressurePolicy, FileStoreOptions, FlushMode } from '../store/store-options';
export type { QueueRange, StoreEvent, StoreStats } from '../store/store-events';
export { MemoryStore } from '../store/memory-store';
export type { MemoryStoreOptions } from '../store/memory-store';

// Servers: the broker over TCP, name servers, and the broker's access control (docs/security.md).
export { BrokerServer } from '../server/broker-server';
export type { BrokerServerOptions } from '../server/broker-server';
export { NameServer, DEFAULT_NAME_SERVER_PORT } from '../server/name-server';
export type { NameServerOptions, NameServerEvent } from '../server/name-server';
export type { BrokerRegistration } from '../message/protocol';
export { AccessControl } from '../broker/access-control';
export type { AclConfig, AclAccountConfig, AclPermName } from '../broker/access-control';
export type { ServerTlsOptions } from '../remoting/tls-options';

// Opening a connection: a transport handed in, TCP (name servers or brokers), or an embedded broker.
export { openConnection, openDriver } from '../connection/open-connection';
export type { Connection, ConnectionOptions, EmbeddedBrokerOptions } from '../connection/open-connection';
