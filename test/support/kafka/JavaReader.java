// Reads a topic with the Apache Kafka Java client (read_committed, from the beginning, no group) and
// prints one JSON line per record: partition, offset, key, value and headers (strings, UTF-8).
// Launched as a single-file source program with the broker's own kafka-clients jar:
//   java -cp '<kafka>/libs/*' JavaReader.java <brokers> <topic> <count> <timeoutMs>
// The test compares what it prints with what the sink wrote: our own record batches, read by the
// reference client.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class JavaReader {
  static String str(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  static String json(String s) {
    if (s == null) return "null";
    StringBuilder o = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') o.append('\\').append(c);
      else if (c < 0x20) o.append(String.format("\\u%04x", (int) c));
      else o.append(c);
    }
    return o.append('"').toString();
  }

  public static void main(String[] args) {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("isolation.level", "read_committed");
    p.put("enable.auto.commit", "false");
    p.put("key.deserializer", ByteArrayDeserializer.class.getName());
    p.put("value.deserializer", ByteArrayDeserializer.class.getName());
    int want = Integer.parseInt(args[2]);
    long deadline = System.currentTimeMillis() + Long.parseLong(args[3]);
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo i : c.partitionsFor(args[1])) parts.add(new TopicPartition(args[1], i.partition()));
      c.assign(parts);
      c.seekToBeginning(parts);
      int n = 0;
      while (n < want && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
          StringBuilder h = new StringBuilder("[");
          for (Header x : r.headers()) {
            if (h.length() > 1) h.append(',');
            h.append('[').append(json(x.key())).append(',').append(json(str(x.value()))).append(']');
          }
          System.out.println(
              "{\"partition\":" + r.partition() + ",\"offset\":" + r.offset() + ",\"key\":" + json(str(r.key()))
                  + ",\"value\":" + json(str(r.value())) + ",\"headers\":" + h.append(']') + "}");
          n++;
        }
      }
    }
  }
}
