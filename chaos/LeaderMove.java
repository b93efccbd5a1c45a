// Move every partition leader, and with them the group and transaction coordinators, the
// way an operator (or Kafka's own preferred-leader rebalance) does: reorder each partition's
// replicas so that its preferred leader is another broker (a reassignment that moves no
// data), then run a preferred leader election. Used by chaos's `leader-move` scenario.
//
//   java -cp 'deploy/kafka/lib/*' chaos/LeaderMove.java BOOTSTRAP GROUP TOPIC_PREFIX...
//
// Partitions of every topic starting with one of the prefixes move (pass `__consumer_offsets`
// and `__transaction_state` to move the coordinators). Prints one line of JSON on stdout:
// leaders moved, and the coordinators of GROUP and of its transactional ids (GROUP.*)
// before and after.

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

public class LeaderMove {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: LeaderMove BOOTSTRAP GROUP TOPIC_PREFIX...");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "120000");
        String group = args[1];
        List<String> prefixes = List.of(args).subList(2, args.length);
        try (Admin admin = Admin.create(props)) {
            Coordinators before = coordinators(admin, group);
            Set<String> topics = admin.listTopics(new ListTopicsOptions().listInternal(true))
                    .names().get(60, TimeUnit.SECONDS).stream()
                    .filter(name -> prefixes.stream().anyMatch(name::startsWith))
                    .collect(Collectors.toSet());
            Map<String, TopicDescription> described =
                    admin.describeTopics(topics).allTopicNames().get(60, TimeUnit.SECONDS);
            Map<TopicPartition, Optional<NewPartitionReassignment>> moves = new HashMap<>();
            for (TopicDescription topic : described.values()) {
                for (TopicPartitionInfo info : topic.partitions()) {
                    List<Integer> replicas = new ArrayList<>();
                    for (Node node : info.replicas()) {
                        replicas.add(node.id());
                    }
                    if (replicas.size() < 2 || info.leader() == null) {
                        continue;
                    }
                    // the replica after the current leader becomes the preferred one
                    int at = replicas.indexOf(info.leader().id());
                    List<Integer> order = new ArrayList<>();
                    for (int i = 1; i <= replicas.size(); i++) {
                        order.add(replicas.get((at + i) % replicas.size()));
                    }
                    moves.put(new TopicPartition(topic.name(), info.partition()),
                            Optional.of(new NewPartitionReassignment(order)));
                }
            }
            admin.alterPartitionReassignments(moves).all().get(120, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!admin.listPartitionReassignments().reassignments()
                    .get(60, TimeUnit.SECONDS).isEmpty()) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("reassignments still running after 120 s");
                }
                Thread.sleep(200);
            }
            // the election the cluster would make by itself (auto.leader.rebalance.enable)
            Map<TopicPartition, Optional<Throwable>> failed = new TreeMap<>(
                    (a, b) -> a.toString().compareTo(b.toString()));
            Set<TopicPartition> pending = moves.keySet();
            int moved = 0;
            for (int attempt = 0; attempt < 20 && !pending.isEmpty(); attempt++) {
                Map<TopicPartition, Optional<Throwable>> result = admin
                        .electLeaders(ElectionType.PREFERRED, pending)
                        .partitions().get(120, TimeUnit.SECONDS);
                failed.clear();
                for (Map.Entry<TopicPartition, Optional<Throwable>> entry : result.entrySet()) {
                    if (entry.getValue().isEmpty()) {
                        moved++;
                    } else if (!entry.getValue().get().getClass().getSimpleName()
                            .equals("ElectionNotNeededException")) {
                        failed.put(entry.getKey(), entry.getValue());
                    }
                }
                pending = new java.util.HashSet<>(failed.keySet());
                if (!pending.isEmpty()) {
                    Thread.sleep(500);
                }
            }
            // brokers learn the new leaders a moment later: ask until every coordinator moved
            Coordinators after = coordinators(admin, group);
            long settle = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!allMoved(before, after) && System.nanoTime() < settle) {
                Thread.sleep(500);
                after = coordinators(admin, group);
            }
            System.out.printf(
                    "{\"partitions\": %d, \"leaders_moved\": %d, \"not_moved\": %d, "
                            + "\"before\": %s, \"after\": %s}%n",
                    moves.size(), moved, failed.size(), before.json(), after.json());
        }
    }

    /** Whether the group's and every transactional id's coordinator differ between the two. */
    static boolean allMoved(Coordinators before, Coordinators after) {
        return before.group() != after.group()
                && before.transactions().keySet().equals(after.transactions().keySet())
                && before.transactions().entrySet().stream().allMatch(
                        e -> !e.getValue().equals(after.transactions().get(e.getKey())));
    }

    /** A group's coordinator and those of its transactional ids (GROUP.*); -1 when unknown. */
    record Coordinators(int group, Map<String, Integer> transactions) {
        String json() {
            String listed = transactions.entrySet().stream()
                    .map(e -> "\"" + e.getKey() + "\": " + e.getValue())
                    .collect(Collectors.joining(", "));
            return "{\"group\": " + group + ", \"transactions\": {" + listed + "}}";
        }
    }

    /** Unknown coordinators (-1, none listed) never fail the move: they are only reported. */
    static Coordinators coordinators(Admin admin, String group) {
        int groupCoordinator = -1;
        Map<String, Integer> transactions = new TreeMap<>();
        try {
            groupCoordinator = admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(30, TimeUnit.SECONDS).coordinator().id();
            List<String> ids = new ArrayList<>();
            for (TransactionListing listing :
                    admin.listTransactions().all().get(30, TimeUnit.SECONDS)) {
                if (listing.transactionalId().startsWith(group + ".")) {
                    ids.add(listing.transactionalId());
                }
            }
            if (!ids.isEmpty()) {
                admin.describeTransactions(ids).all().get(30, TimeUnit.SECONDS).forEach(
                        (id, description) -> transactions.put(id, description.coordinatorId()));
            }
        } catch (Exception error) {
            System.err.println("LeaderMove: coordinators not known: " + error);
        }
        return new Coordinators(groupCoordinator, transactions);
    }
}
