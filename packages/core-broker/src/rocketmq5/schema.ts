/**
 * The subset of RocketMQ 5's gRPC protocol (`apache.rocketmq.v2`, github.com/apache/rocketmq-apis,
 * `definition.proto` + `service.proto`) RocketNest speaks, as proto3 text. Field names and numbers
 * are the interface: they were checked against rocketmq-apis 2.x and must never be renumbered.
 * Left out: the admin service, the Lite-topic fields and `SyncLiteSubscription` (newer than the
 * 5.3 proxy), `OffsetOption`. Unknown fields a newer client sends are skipped by the decoder.
 *
 * It is parsed at start-up by protobufjs (see codec.ts), so there is no code-generation step.
 */
export const WELL_KNOWN_PROTO = `
syntax = "proto3";
package google.protobuf;
message Duration { int64 seconds = 1; int32 nanos = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
`;

export const ROCKETMQ_V2_PROTO = `
syntax = "proto3";
package apache.rocketmq.v2;

enum TransactionResolution { TRANSACTION_RESOLUTION_UNSPECIFIED = 0; COMMIT = 1; ROLLBACK = 2; }
enum TransactionSource { SOURCE_UNSPECIFIED = 0; SOURCE_CLIENT = 1; SOURCE_SERVER_CHECK = 2; }
enum Permission { PERMISSION_UNSPECIFIED = 0; NONE = 1; READ = 2; WRITE = 3; READ_WRITE = 4; }
enum FilterType { FILTER_TYPE_UNSPECIFIED = 0; TAG = 1; SQL = 2; }
enum AddressScheme { ADDRESS_SCHEME_UNSPECIFIED = 0; IPv4 = 1; IPv6 = 2; DOMAIN_NAME = 3; }
enum MessageType { MESSAGE_TYPE_UNSPECIFIED = 0; NORMAL = 1; FIFO = 2; DELAY = 3; TRANSACTION = 4; }
enum DigestType { DIGEST_TYPE_UNSPECIFIED = 0; CRC32 = 1; MD5 = 2; SHA1 = 3; }
enum ClientType {
  CLIENT_TYPE_UNSPECIFIED = 0; PRODUCER = 1; PUSH_CONSUMER = 2; SIMPLE_CONSUMER = 3; PULL_CONSUMER = 4;
}
enum Encoding { ENCODING_UNSPECIFIED = 0; IDENTITY = 1; GZIP = 2; }
enum QueryOffsetPolicy { BEGINNING = 0; END = 1; TIMESTAMP = 2; }
enum Language {
  LANGUAGE_UNSPECIFIED = 0; JAVA = 1; CPP = 2; DOT_NET = 3; GOLANG = 4; RUST = 5; PYTHON = 6; PHP = 7;
  NODE_JS = 8; RUBY = 9; OBJECTIVE_C = 10; DART = 11; KOTLIN = 12;
}

message FilterExpression { FilterType type = 1; string expression = 2; }
message RetryPolicy {
  int32 max_attempts = 1;
  oneof strategy { ExponentialBackoff exponential_backoff = 2; CustomizedBackoff customized_backoff = 3; }
}
message ExponentialBackoff {
  google.protobuf.Duration initial = 1; google.protobuf.Duration max = 2; float multiplier = 3;
}
message CustomizedBackoff { repeated google.protobuf.Duration next = 1; }
message Resource { string resource_namespace = 1; string name = 2; }
message SubscriptionEntry { Resource topic = 1; FilterExpression expression = 2; }
message Address { string host = 1; int32 port = 2; }
message Endpoints { AddressScheme scheme = 1; repeated Address addresses = 2; }
message Broker { string name = 1; int32 id = 2; Endpoints endpoints = 3; }
message MessageQueue {
  Resource topic = 1; int32 id = 2; Permission permission = 3; Broker broker = 4;
  repeated MessageType accept_message_types = 5;
}
message Digest { DigestType type = 1; string checksum = 2; }
message SystemProperties {
  optional string tag = 1;
  repeated string keys = 2;
  string message_id = 3;
  Digest body_digest = 4;
  Encoding body_encoding = 5;
  MessageType message_type = 6;
  google.protobuf.Timestamp born_timestamp = 7;
  string born_host = 8;
  optional google.protobuf.Timestamp store_timestamp = 9;
  string store_host = 10;
  optional google.protobuf.Timestamp delivery_timestamp = 11;
  optional string receipt_handle = 12;
  int32 queue_id = 13;
  optional int64 queue_offset = 14;
  optional google.protobuf.Duration invisible_duration = 15;
  optional int32 delivery_attempt = 16;
  optional string message_group = 17;
  optional string trace_context = 18;
  optional google.protobuf.Duration orphaned_transaction_recovery_duration = 19;
  optional DeadLetterQueue dead_letter_queue = 20;
}
message DeadLetterQueue { string topic = 1; string message_id = 2; }
message Message {
  Resource topic = 1; map<string, string> user_properties = 2; SystemProperties system_properties = 3; bytes body = 4;
}
message Assignment { MessageQueue message_queue = 1; }
// code is the \`Code\` enum of definition.proto, kept as int32 so a code this table lacks survives (status.ts)
message Status { int32 code = 1; string message = 2; }
message UA { Language language = 1; string version = 2; string platform = 3; string hostname = 4; }
message Settings {
  optional ClientType client_type = 1;
  optional Endpoints access_point = 2;
  optional RetryPolicy backoff_policy = 3;
  optional google.protobuf.Duration request_timeout = 4;
  oneof pub_sub { Publishing publishing = 5; Subscription subscription = 6; }
  UA user_agent = 7;
  Metric metric = 8;
}
message Publishing { repeated Resource topics = 1; int32 max_body_size = 2; bool validate_message_type = 3; }
message Subscription {
  optional Resource group = 1;
  repeated SubscriptionEntry subscriptions = 2;
  optional bool fifo = 3;
  optional int32 receive_batch_size = 4;
  optional google.protobuf.Duration long_polling_timeout = 5;
}
message Metric { bool on = 1; optional Endpoints endpoints = 2; }

message QueryRouteRequest { Resource topic = 1; Endpoints endpoints = 2; }
message QueryRouteResponse { Status status = 1; repeated MessageQueue message_queues = 2; }
message SendMessageRequest { repeated Message messages = 1; }
message SendResultEntry {
  Status status = 1; string message_id = 2; string transaction_id = 3; int64 offset = 4; string recall_handle = 5;
}
message SendMessageResponse { Status status = 1; repeated SendResultEntry entries = 2; }
message QueryAssignmentRequest { Resource topic = 1; Resource group = 2; Endpoints endpoints = 3; }
message QueryAssignmentResponse { Status status = 1; repeated Assignment assignments = 2; }
message ReceiveMessageRequest {
  Resource group = 1;
  MessageQueue message_queue = 2;
  FilterExpression filter_expression = 3;
  int32 batch_size = 4;
  optional google.protobuf.Duration invisible_duration = 5;
  bool auto_renew = 6;
  optional google.protobuf.Duration long_polling_timeout = 7;
  optional string attempt_id = 8;
}
message ReceiveMessageResponse {
  oneof content { Status status = 1; Message message = 2; google.protobuf.Timestamp delivery_timestamp = 3; }
}
message AckMessageEntry { string message_id = 1; string receipt_handle = 2; }
message AckMessageRequest { Resource group = 1; Resource topic = 2; repeated AckMessageEntry entries = 3; }
message AckMessageResultEntry { string message_id = 1; string receipt_handle = 2; Status status = 3; }
message AckMessageResponse { Status status = 1; repeated AckMessageResultEntry entries = 2; }
message ForwardMessageToDeadLetterQueueRequest {
  Resource group = 1; Resource topic = 2; string receipt_handle = 3; string message_id = 4;
  int32 delivery_attempt = 5; int32 max_delivery_attempts = 6;
}
message ForwardMessageToDeadLetterQueueResponse { Status status = 1; }
message HeartbeatRequest { optional Resource group = 1; ClientType client_type = 2; }
message HeartbeatResponse { Status status = 1; }
message EndTransactionRequest {
  Resource topic = 1; string message_id = 2; string transaction_id = 3; TransactionResolution resolution = 4;
  TransactionSource source = 5; string trace_context = 6;
}
message EndTransactionResponse { Status status = 1; }
message PrintThreadStackTraceCommand { string nonce = 1; }
message ReconnectEndpointsCommand { string nonce = 1; }
message ThreadStackTrace { string nonce = 1; optional string thread_stack_trace = 2; }
message VerifyMessageCommand { string nonce = 1; Message message = 2; }
message VerifyMessageResult { string nonce = 1; }
message RecoverOrphanedTransactionCommand { Message message = 1; string transaction_id = 2; }
message TelemetryCommand {
  optional Status status = 1;
  oneof command {
    Settings settings = 2;
    ThreadStackTrace thread_stack_trace = 3;
    VerifyMessageResult verify_message_result = 4;
    RecoverOrphanedTransactionCommand recover_orphaned_transaction_command = 5;
    PrintThreadStackTraceCommand print_thread_stack_trace_command = 6;
    VerifyMessageCommand verify_message_command = 7;
    ReconnectEndpointsCommand reconnect_endpoints_command = 8;
  }
}
message NotifyClientTerminationRequest { optional Resource group = 1; }
message NotifyClientTerminationResponse { Status status = 1; }
message ChangeInvisibleDurationRequest {
  Resource group = 1; Resource topic = 2; string receipt_handle = 3;
  google.protobuf.Duration invisible_duration = 4; string message_id = 5;
}
message ChangeInvisibleDurationResponse { Status status = 1; string receipt_handle = 2; }
message PullMessageRequest {
  Resource group = 1; MessageQueue message_queue = 2; int64 offset = 3; int32 batch_size = 4;
  FilterExpression filter_expression = 5; google.protobuf.Duration long_polling_timeout = 6;
}
message PullMessageResponse { oneof content { Status status = 1; Message message = 2; int64 next_offset = 3; } }
message UpdateOffsetRequest { Resource group = 1; MessageQueue message_queue = 2; int64 offset = 3; }
message UpdateOffsetResponse { Status status = 1; }
message GetOffsetRequest { Resource group = 1; MessageQueue message_queue = 2; }
message GetOffsetResponse { Status status = 1; int64 offset = 2; }
message QueryOffsetRequest {
  MessageQueue message_queue = 1; QueryOffsetPolicy query_offset_policy = 2;
  optional google.protobuf.Timestamp timestamp = 3;
}
message QueryOffsetResponse { Status status = 1; int64 offset = 2; }
message RecallMessageRequest { Resource topic = 1; string recall_handle = 2; }
message RecallMessageResponse { Status status = 1; string message_id = 2; }
`;
