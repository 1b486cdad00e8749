// The Apache Kafka Java client's own answer for keyed records: for each key (hex, one per line on
// stdin) prints "<Utils.murmur2(key)> <partition for 1..MAX partitions, space separated>", the
// partition being what the client's built-in partitioner picks for a keyed record
// (BuiltInPartitioner.partitionForKey). Launched as a single-file source program:
//   java -cp '<kafka>/libs/*' JavaPartitioner.java <maxPartitions> < keys.hex
// The unit test of our murmur2 / partitionOf compares against it: an oracle that shares no code.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class JavaPartitioner {
  public static void main(String[] args) throws Exception {
    int max = Integer.parseInt(args[0]);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    StringBuilder out = new StringBuilder();
    String line;
    while ((line = in.readLine()) != null) {
      byte[] key = HexFormat.of().parseHex(line.trim());
      out.append(Utils.murmur2(key));
      for (int n = 1; n <= max; n++) out.append(' ').append(BuiltInPartitioner.partitionForKey(key, n));
      out.append('\n');
    }
    System.out.print(out);
  }
}
