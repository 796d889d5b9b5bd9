package dev.rocketnest.probe;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientConfigurationBuilder;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.SessionCredentialsProvider;
import org.apache.rocketmq.client.apis.StaticSessionCredentialsProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageBuilder;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.ProducerBuilder;
import org.apache.rocketmq.client.apis.producer.SendReceipt;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * Drives the official RocketMQ 5 Java client for RocketNest's official-client and differential
 * suites. One JSON object per line on stdout (the tests parse it); exit 0 when the scenario ran to
 * its end, 2 on a client error (printed as {"event":"error",…}), 64 on bad arguments.
 *
 * <pre>
 * java -cp "target/classes:target/lib/*" dev.rocketnest.probe.Probe send --endpoint 127.0.0.1:8081 --topic T --count 3
 * </pre>
 *
 * Scenarios: send (normal, --message-groups N for FIFO, --delay-ms for delayed, --region R as a
 * user property for SQL92 filters, --seq-from N to number messages from N, --recall-first N
 * [--recall-times K] to recall the first N delayed messages K times each), transaction
 * (--checks UNKNOWN,COMMIT: the half message is left open and the checker answers in turn),
 * simple (SimpleConsumer: receive until --count messages or --timeout-ms; --mode ack | change
 * (first delivery's invisible time changed to --change-ms, acked on redelivery) | skip-first (first
 * delivery left unacked)), push (PushConsumer: --fail-first N fails each message's first N attempts;
 * --received N stops after N deliveries, failed ones included; --handle-ms N spends N ms in the
 * handler; --linger-ms N waits before closing). Filters: --filter EXPR --filter-type TAG | SQL92.
 * bench-send (--count N, --concurrency C, --body-bytes B: async sends, C outstanding) and
 * bench-receive (--count N: SimpleConsumer receives of 32, each acked) print one "bench" event
 * with count, elapsedMs and the p50/p99 latency of a send or of a receive-and-ack round (ms), for
 * bench/grpc.bench.js. Credentials: --access-key/--secret-key.
 */
public final class Probe {
  private final Map<String, String> opts = new HashMap<>();
  private final ClientServiceProvider provider = ClientServiceProvider.loadService();

  public static void main(String[] args) throws Exception {
    if (args.length < 1) usage("missing scenario");
    Probe probe = new Probe();
    for (int i = 1; i < args.length; i++) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) usage("bad option " + args[i]);
      probe.opts.put(args[i].substring(2), args[++i]);
    }
    int code = 0;
    try {
      switch (args[0]) {
        case "send" -> probe.send();
        case "transaction" -> probe.transaction();
        case "simple" -> probe.simple();
        case "push" -> probe.push();
        case "bench-send" -> probe.benchSend();
        case "bench-receive" -> probe.benchReceive();
        default -> usage("unknown scenario " + args[0]);
      }
    } catch (ClientException | IllegalStateException e) {
      // A client that cannot start (e.g. refused credentials) throws from build(), sometimes with
      // the server's ClientException as the cause: report the innermost ClientException.
      Throwable cause = e;
      Throwable root = e;
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (t instanceof ClientException) cause = t;
        root = t;
      }
      emit(
          "error",
          "class", cause.getClass().getSimpleName(),
          "message", String.valueOf(cause.getMessage()),
          "root", root.getClass().getSimpleName() + ": " + root.getMessage());
      code = 2;
    }
    emit("done", "exit", code);
    System.out.flush();
    System.exit(code);
  }

  private static void usage(String why) {
    System.err.println("probe: " + why + " (see Probe.java's class comment)");
    System.exit(64);
  }

  private String opt(String name, String dflt) {
    String v = opts.get(name);
    if (v == null && dflt == null) usage("--" + name + " is required");
    return v == null ? dflt : v;
  }

  private long num(String name, long dflt) {
    return Long.parseLong(opt(name, Long.toString(dflt)));
  }

  private ClientConfiguration config() {
    ClientConfigurationBuilder b =
        ClientConfiguration.newBuilder()
            .setEndpoints(opt("endpoint", null))
            .enableSsl(Boolean.parseBoolean(opt("ssl", "false")))
            .setRequestTimeout(Duration.ofMillis(num("request-timeout-ms", 3000)));
    String ak = opts.get("access-key");
    if (ak != null) {
      SessionCredentialsProvider creds = new StaticSessionCredentialsProvider(ak, opt("secret-key", null));
      b.setCredentialProvider(creds);
    }
    if (opts.containsKey("namespace")) b.setNamespace(opts.get("namespace"));
    return b.build();
  }

  private Message message(String topic, int i) {
    MessageBuilder m =
        provider
            .newMessageBuilder()
            .setTopic(topic)
            .setBody(("m-" + i).getBytes(StandardCharsets.UTF_8))
            .setKeys("k-" + i)
            .addProperty("seq", Integer.toString(i));
    String tag = opts.get("tag");
    if (tag != null) m.setTag(tag);
    long groups = num("message-groups", 0);
    if (groups > 0) m.setMessageGroup("g" + (i % groups));
    long delay = num("delay-ms", 0);
    if (delay > 0) m.setDeliveryTimestamp(System.currentTimeMillis() + delay);
    String region = opts.get("region");
    if (region != null) m.addProperty("region", region);
    return m.build();
  }

  private void send() throws Exception {
    String topic = opt("topic", null);
    ProducerBuilder b = provider.newProducerBuilder().setClientConfiguration(config()).setTopics(topic);
    try (Producer producer = b.build()) {
      long from = num("seq-from", 0);
      long count = num("count", 1);
      List<String> recallHandles = new ArrayList<>();
      for (int i = (int) from; i < from + count; i++) {
        try {
          SendReceipt r = producer.send(message(topic, i));
          emit("sent", "seq", i, "id", r.getMessageId().toString());
          recallHandles.add(r.getRecallHandle());
        } catch (ClientException e) {
          emit("send-failed", "seq", i, "class", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage()));
        }
      }
      // --recall-first N: recall the first N (delayed) messages, each --recall-times times (default 1)
      long recallFirst = num("recall-first", 0);
      for (int i = 0; i < Math.min(recallFirst, recallHandles.size()); i++) {
        for (int n = 0; n < num("recall-times", 1); n++) {
          try {
            producer.recallMessage(topic, recallHandles.get(i));
            emit("recalled", "seq", from + i, "n", n + 1);
          } catch (ClientException e) {
            emit("recall-failed", "seq", from + i, "n", n + 1, "class", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage()));
          }
        }
      }
    }
  }

  private void transaction() throws Exception {
    String topic = opt("topic", null);
    String[] answers = opt("checks", "COMMIT").split(",");
    AtomicInteger checks = new AtomicInteger();
    CountDownLatch resolved = new CountDownLatch(1);
    ProducerBuilder b =
        provider
            .newProducerBuilder()
            .setClientConfiguration(config())
            .setTopics(topic)
            .setTransactionChecker(
                view -> {
                  int n = checks.getAndIncrement();
                  TransactionResolution answer = TransactionResolution.valueOf(answers[Math.min(n, answers.length - 1)]);
                  emit("check", "n", n + 1, "id", view.getMessageId().toString(), "answer", answer.name());
                  if (answer != TransactionResolution.UNKNOWN) resolved.countDown();
                  return answer;
                });
    try (Producer producer = b.build()) {
      Transaction tx = producer.beginTransaction();
      SendReceipt r = producer.send(message(topic, 0), tx);
      emit("half-sent", "id", r.getMessageId().toString());
      String end = opt("end", "open");
      if (end.equals("commit")) tx.commit();
      else if (end.equals("rollback")) tx.rollback();
      if (end.equals("open")) {
        boolean ok = resolved.await(num("timeout-ms", 60000), TimeUnit.MILLISECONDS);
        emit(ok ? "resolved" : "unresolved", "checks", checks.get());
      } else emit("ended", "how", end);
    }
  }

  private FilterExpression filter() {
    String type = opt("filter-type", "TAG");
    return new FilterExpression(opt("filter", "*"), FilterExpressionType.valueOf(type));
  }

  private void simple() throws Exception {
    String topic = opt("topic", null);
    long want = num("count", 1);
    String mode = opt("mode", "ack");
    Duration invisible = Duration.ofMillis(num("invisible-ms", 15000));
    long deadline = System.currentTimeMillis() + num("timeout-ms", 60000);
    Map<String, Integer> firstSeen = new HashMap<>();
    int done = 0;
    try (SimpleConsumer consumer =
        provider
            .newSimpleConsumerBuilder()
            .setClientConfiguration(config())
            .setConsumerGroup(opt("group", null))
            .setAwaitDuration(Duration.ofMillis(num("await-ms", 5000)))
            .setSubscriptionExpressions(Collections.singletonMap(topic, filter()))
            .build()) {
      while (done < want && System.currentTimeMillis() < deadline) {
        List<MessageView> views = consumer.receive((int) num("batch", 16), invisible);
        for (MessageView v : views) {
          emitView("received", v);
          String id = v.getMessageId().toString();
          boolean first = firstSeen.putIfAbsent(id, v.getDeliveryAttempt()) == null;
          if (first && mode.equals("change")) {
            consumer.changeInvisibleDuration(v, Duration.ofMillis(num("change-ms", 10000)));
            emit("changed", "id", id);
          } else if (first && mode.equals("skip-first")) {
            emit("skipped", "id", id);
          } else {
            consumer.ack(v);
            emit("acked", "id", id);
            done++;
          }
        }
      }
    }
    emit(done >= want ? "complete" : "incomplete", "acked", done);
  }

  private void push() throws Exception {
    String topic = opt("topic", null);
    long want = num("count", 1);
    long failFirst = num("fail-first", 0);
    long handleMs = num("handle-ms", 0);
    // --received N: done after N deliveries (failed ones included) rather than N successes.
    long receivedWanted = num("received", 0);
    CountDownLatch all = new CountDownLatch((int) (receivedWanted > 0 ? receivedWanted : want));
    Map<String, Boolean> succeeded = new ConcurrentHashMap<>();
    List<String> order = Collections.synchronizedList(new ArrayList<>());
    try (PushConsumer consumer =
        provider
            .newPushConsumerBuilder()
            .setClientConfiguration(config())
            .setConsumerGroup(opt("group", null))
            .setSubscriptionExpressions(Collections.singletonMap(topic, filter()))
            .setMessageListener(
                v -> {
                  emitView("received", v);
                  if (receivedWanted > 0) all.countDown();
                  if (handleMs > 0) {
                    try {
                      Thread.sleep(handleMs);
                    } catch (InterruptedException e) {
                      Thread.currentThread().interrupt();
                    }
                  }
                  if (v.getDeliveryAttempt() <= failFirst) {
                    emit("failed", "id", v.getMessageId().toString(), "attempt", v.getDeliveryAttempt());
                    return ConsumeResult.FAILURE;
                  }
                  order.add(v.getMessageId().toString());
                  boolean first = succeeded.putIfAbsent(v.getMessageId().toString(), true) == null;
                  emit("consumed", "id", v.getMessageId().toString(), "attempt", v.getDeliveryAttempt());
                  if (first && receivedWanted == 0) all.countDown();
                  return ConsumeResult.SUCCESS;
                })
            .build()) {
      boolean ok = all.await(num("timeout-ms", 60000), TimeUnit.MILLISECONDS);
      // Lets the client send what the last result needs (the nack of a failure) before closing.
      Thread.sleep(num("linger-ms", 0));
      emit(ok ? "complete" : "incomplete", "consumed", succeeded.size());
    }
  }

  private void benchSend() throws Exception {
    String topic = opt("topic", null);
    int count = (int) num("count", 10000);
    java.util.concurrent.Semaphore window = new java.util.concurrent.Semaphore((int) num("concurrency", 32));
    byte[] body = new byte[(int) num("body-bytes", 1024)];
    long[] latencies = new long[count];
    AtomicInteger errors = new AtomicInteger();
    CountDownLatch done = new CountDownLatch(count);
    try (Producer producer = provider.newProducerBuilder().setClientConfiguration(config()).setTopics(topic).build()) {
      long start = System.nanoTime();
      for (int i = 0; i < count; i++) {
        window.acquire();
        final int at = i;
        long sentAt = System.nanoTime();
        producer
            .sendAsync(provider.newMessageBuilder().setTopic(topic).setTag("bench").setBody(body).build())
            .whenComplete(
                (r, e) -> {
                  latencies[at] = System.nanoTime() - sentAt;
                  if (e != null) errors.incrementAndGet();
                  window.release();
                  done.countDown();
                });
      }
      done.await();
      emitBench(count, System.nanoTime() - start, latencies, count, errors.get());
    }
  }

  private void benchReceive() throws Exception {
    String topic = opt("topic", null);
    int count = (int) num("count", 10000);
    long deadline = System.currentTimeMillis() + num("timeout-ms", 120000);
    List<Long> rounds = new ArrayList<>();
    int got = 0;
    try (SimpleConsumer consumer =
        provider
            .newSimpleConsumerBuilder()
            .setClientConfiguration(config())
            .setConsumerGroup(opt("group", null))
            .setAwaitDuration(Duration.ofSeconds(10))
            .setSubscriptionExpressions(Collections.singletonMap(topic, new FilterExpression("*", FilterExpressionType.TAG)))
            .build()) {
      long start = System.nanoTime();
      while (got < count && System.currentTimeMillis() < deadline) {
        long roundAt = System.nanoTime();
        List<MessageView> views = consumer.receive(32, Duration.ofSeconds(30));
        List<java.util.concurrent.CompletableFuture<Void>> acks = new ArrayList<>();
        for (MessageView v : views) acks.add(consumer.ackAsync(v));
        for (java.util.concurrent.CompletableFuture<Void> a : acks) a.join();
        if (!views.isEmpty()) rounds.add(System.nanoTime() - roundAt);
        got += views.size();
      }
      long[] latencies = rounds.stream().mapToLong(Long::longValue).toArray();
      emitBench(got, System.nanoTime() - start, latencies, latencies.length, 0);
    }
  }

  private static void emitBench(int count, long elapsedNs, long[] latencies, int n, int errors) {
    long[] sorted = java.util.Arrays.copyOf(latencies, n);
    java.util.Arrays.sort(sorted);
    double p50 = n == 0 ? 0 : sorted[Math.min(n - 1, (int) Math.floor(n * 0.5))] / 1e6;
    double p99 = n == 0 ? 0 : sorted[Math.min(n - 1, (int) Math.floor(n * 0.99))] / 1e6;
    emit("bench", "count", count, "elapsedMs", elapsedNs / 1e6, "p50Ms", p50, "p99Ms", p99, "errors", errors);
  }

  private static void emitView(String event, MessageView v) {
    ByteBuffer body = v.getBody();
    byte[] bytes = new byte[body.remaining()];
    body.get(bytes);
    emit(
        event,
        "id", v.getMessageId().toString(),
        "topic", v.getTopic(),
        "tag", v.getTag().orElse(null),
        "keys", String.join(",", v.getKeys()),
        "group", v.getMessageGroup().orElse(null),
        "attempt", v.getDeliveryAttempt(),
        "seq", v.getProperties().get("seq"),
        "region", v.getProperties().get("region"),
        "body", new String(bytes, StandardCharsets.UTF_8));
  }

  /** Prints one JSON object: {"event": event, k1: v1, …}; values are strings, numbers or null. */
  static synchronized void emit(String event, Object... kv) {
    StringBuilder sb = new StringBuilder("{\"event\":").append(quote(event));
    for (int i = 0; i + 1 < kv.length; i += 2) {
      sb.append(',').append(quote(String.valueOf(kv[i]))).append(':');
      Object v = kv[i + 1];
      if (v == null) sb.append("null");
      else if (v instanceof Number) sb.append(v);
      else sb.append(quote(v.toString()));
    }
    System.out.println(sb.append('}'));
    System.out.flush();
  }

  private static String quote(String s) {
    StringBuilder sb = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
          else sb.append(c);
        }
      }
    }
    return sb.append('"').toString();
  }
}
