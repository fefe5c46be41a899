using System.Collections;
using System.Diagnostics;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Health.V1;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// Requests generated from the protobuf descriptors, for every RPC: random and boundary values per
/// field type (ids that exist and ids that do not, huge and malformed strings, extreme numbers,
/// undefined enum values, out-of-range and sub-millisecond times, unnormalized durations). Every
/// answer is OK or a caller-fault status with a reason, never INTERNAL or UNKNOWN, and comes quickly;
/// the server still answers Health afterwards. Seeded and reproducible:
/// <c>PROCUREMENT_FUZZ_SEED=n PROCUREMENT_FUZZ_ITERATIONS=5000 dotnet test --filter FuzzTests</c>.
/// </summary>
public sealed class FuzzTests : IAsyncLifetime
{
    private static readonly StatusCode[] CallerFaults =
    [
        StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.AlreadyExists, StatusCode.FailedPrecondition,
        StatusCode.Aborted, StatusCode.ResourceExhausted, StatusCode.PermissionDenied, StatusCode.OutOfRange, StatusCode.Unauthenticated,
    ];

    private ServerHarness _server = null!;
    private readonly List<string> _ids = ["h100", "h200"];
    private string[] _keys = [];

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server);
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 100, 100));
        var draft = await Fixtures.CreateContractAsync(_server, "lab-b");
        var a = await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 10,
        });
        _ids.AddRange([k.ContractId, draft.ContractId, a.Allocation.AllocationId, "lab-a", "lab-b", "inc_1", "H100-SXM-80GB"]);
        _keys = [_server.OperatorKey, _server.OperatorKey, await _server.CreateKeyAsync(Role.Customer, "lab-a"), await _server.CreateKeyAsync(Role.Meter)];
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public static TheoryData<string> Rpcs => new(Services.SelectMany(s => s.Methods).Select(m => m.FullName));

    private static readonly ServiceDescriptor[] Services = [ContractService.Descriptor, AllocationService.Descriptor, SlaService.Descriptor];

    [Theory]
    [MemberData(nameof(Rpcs))]
    public async Task GeneratedRequests_AreAnsweredOkOrAsTheCallersFault(string rpc)
    {
        var method = Services.SelectMany(s => s.Methods).Single(m => m.FullName == rpc);
        var seed = int.TryParse(Environment.GetEnvironmentVariable("PROCUREMENT_FUZZ_SEED"), out var s) ? s : 20261204;
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("PROCUREMENT_FUZZ_ITERATIONS"), out var n) ? n : 100;
        // HashCode.Combine is seeded per process: a stable mix, so a failure's seed reproduces it.
        var random = new Random(unchecked((seed * 31) + StableHash(rpc)));
        var slowest = TimeSpan.Zero;
        for (var i = 0; i < iterations; i++)
        {
            var request = Generate(method.InputType, random, depth: 0);
            var key = _keys[random.Next(_keys.Length)];
            var watch = Stopwatch.StartNew();
            var status = await CallAsync(method, request, key, random);
            watch.Stop();
            slowest = watch.Elapsed > slowest ? watch.Elapsed : slowest;
            string Context() => $"seed {seed}, {rpc} #{i}: {Describe(request)}";
            if (status is { } e)
            {
                if (!CallerFaults.Contains(e.StatusCode))
                {
                    Assert.Fail($"{e.StatusCode} {e.Status.Detail} for {Context()}");
                }

                // A message over the 16 MiB limit is refused by gRPC itself while reading it, before any
                // of the server's code, with its own message and no ErrorInfo.
                if (e.StatusCode == StatusCode.ResourceExhausted && request.CalculateSize() > MaxMessageBytes)
                {
                    Assert.Contains("exceeds the maximum configured message size", e.Status.Detail, StringComparison.Ordinal);
                }
                else if (string.IsNullOrEmpty(e.GetRpcStatus()?.GetDetail<ErrorInfo>()?.Reason))
                {
                    Assert.Fail($"no reason on {e.StatusCode} for {Context()}");
                }
            }

            // A bound for a loaded shared test host; the point is that nothing hangs.
            if (watch.Elapsed > TimeSpan.FromSeconds(2))
            {
                Assert.Fail($"{watch.Elapsed} for {Context()}");
            }
        }

        var health = await new Health.HealthClient(_server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    /// <summary>Makes the call; null when it succeeded (or a stream ran until the test stopped it).</summary>
    private async Task<RpcException?> CallAsync(MethodDescriptor method, IMessage request, string key, Random random)
    {
        var invoker = _server.Invoker(key);
        var marshallerIn = Marshallers.Create<IMessage>(m => m.ToByteArray(), b => method.InputType.Parser.ParseFrom(b));
        var marshallerOut = Marshallers.Create<IMessage>(m => m.ToByteArray(), b => method.OutputType.Parser.ParseFrom(b));
        var type = method.IsClientStreaming ? MethodType.ClientStreaming : method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var grpcMethod = new Method<IMessage, IMessage>(type, method.Service.FullName, method.Name, marshallerIn, marshallerOut);
        try
        {
            switch (type)
            {
                case MethodType.Unary:
                    await invoker.AsyncUnaryCall(grpcMethod, null, new CallOptions(deadline: DateTime.MaxValue), request);
                    return null;
                case MethodType.ServerStreaming:
                    using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
                    {
                        using var call = invoker.AsyncServerStreamingCall(grpcMethod, null, new CallOptions(cancellationToken: cts.Token), request);
                        try
                        {
                            while (await call.ResponseStream.MoveNext(cts.Token))
                            {
                            }
                        }
                        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cts.IsCancellationRequested)
                        {
                        }
                    }

                    return null;
                default:
                    using (var call = invoker.AsyncClientStreamingCall(grpcMethod, null, default))
                    {
                        try
                        {
                            for (var i = random.Next(1, 4); i > 0; i--)
                            {
                                await call.RequestStream.WriteAsync(i == 1 ? request : Generate(method.InputType, random, 0));
                            }

                            await call.RequestStream.CompleteAsync();
                        }
                        catch (RpcException)
                        {
                            // Refused before the client finished writing: the answer says why.
                        }

                        await call.ResponseAsync;
                    }

                    return null;
            }
        }
        catch (RpcException e)
        {
            return e;
        }
    }

    private IMessage Generate(MessageDescriptor descriptor, Random random, int depth)
    {
        var message = (IMessage)Activator.CreateInstance(descriptor.ClrType)!;
        switch (message)
        {
            case Timestamp t:
                (t.Seconds, t.Nanos) = Pick(random,
                    (_server.Clock.GetUtcNow().ToUnixTimeSeconds() + random.Next(-86_400 * 60, 86_400 * 60), 0),
                    (random.NextInt64(0, 253_370_764_800), random.Next(1000) * 1_000_000),
                    (-62_135_596_801L, 0), (253_402_300_800L, 0), (long.MaxValue, 0), (long.MinValue, 0),
                    (1_700_000_000L, 1_000_000_000), (1_700_000_000L, -1), (1_700_000_000L, 1_500));
                return t;
            case Duration d:
                (d.Seconds, d.Nanos) = Pick(random,
                    (random.Next(1, 86_400 * 30), 0), (0, 1_000_000), (1, -1_000_000), (-1, 1), (long.MaxValue, 0), (long.MinValue, 0),
                    (315_576_000_000L, 0), (0, 1_000_000_000), (3_600L, 1));
                return d;
        }

        if (depth > 4)
        {
            return message;
        }

        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            if (field.IsMap || random.Next(10) < 2)
            {
                continue;
            }

            if (field.IsRepeated)
            {
                var list = (IList)field.Accessor.GetValue(message);
                var count = random.Next(10) == 0 ? random.Next(50, 300) : random.Next(0, 4);
                for (var i = 0; i < count; i++)
                {
                    list.Add(Value(field, random, depth));
                }
            }
            else
            {
                field.Accessor.SetValue(message, Value(field, random, depth));
            }
        }

        return message;
    }

    private object Value(FieldDescriptor field, Random random, int depth) => field.FieldType switch
    {
        FieldType.String => Text(field, random),
        FieldType.Bool => random.Next(2) == 0,
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => Pick(random, 0, 1, -1, int.MaxValue, int.MinValue, random.Next(-100, 100_000), 2026, 12, 13),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => Pick(random, 0L, 1L, -1L, long.MaxValue, long.MinValue, random.NextInt64(-100, 1_000_000), 2_500_000L),
        FieldType.UInt32 or FieldType.Fixed32 => (uint)random.Next(),
        FieldType.UInt64 or FieldType.Fixed64 => (ulong)random.NextInt64(),
        FieldType.Double => Pick(random, 0d, double.NaN, double.PositiveInfinity, -1d, 1e300),
        FieldType.Float => Pick(random, 0f, float.NaN, float.NegativeInfinity, 1e30f),
        FieldType.Bytes => ByteString.CopyFrom(new byte[random.Next(0, 64)]),
        FieldType.Enum => random.Next(5) == 0 ? Pick(random, 999, -1) : field.EnumType.Values[random.Next(field.EnumType.Values.Count)].Number,
        FieldType.Message => Generate(field.MessageType, random, depth + 1),
        _ => throw new InvalidOperationException($"no generator for {field.FieldType}"),
    };

    private string Text(FieldDescriptor field, Random random)
    {
        if (field.Name == "request_id" && random.Next(4) != 0)
        {
            return Guid.NewGuid().ToString();
        }

        if (field.Name.EndsWith("_id", StringComparison.Ordinal) && random.Next(2) == 0)
        {
            return _ids[random.Next(_ids.Count)];
        }

        return random.Next(16) switch
        {
            0 => "",
            1 => new string('9', random.Next(30, 2_000)),
            2 => random.Next(4) == 0 ? new string('x', 100_000) : new string('x', random.Next(1, 300)),
            3 => "1\u0000",
            4 => Pick(random, "1e3", "NaN", "-0", "+1", ".5", "5.", "1.2.3", "Infinity", "０"),
            5 => Pick(random, "79228162514264337593543950335", "-79228162514264337593543950335", "0.0000000000000000000000000001"),
            6 => "é😀\u202e\ud800",
            7 => random.Next(-10, 110).ToString(System.Globalization.CultureInfo.InvariantCulture),
            8 => (random.NextDouble() * 2).ToString("0.####", System.Globalization.CultureInfo.InvariantCulture),
            9 => Pick(random, "USD", "EUR", "XXX", "usd", "JPY"),
            10 => Pick(random, "H100-SXM-80GB", "H200-SXM-141GB", "GPU-IDX"),
            11 => " padded ",
            12 => Pick(random, "ACTIVE", "DRAFT", "OUTAGE"),
            _ => _ids[random.Next(_ids.Count)],
        };
    }

    private static T Pick<T>(Random random, params T[] values) => values[random.Next(values.Length)];

    /// <summary>The request as JSON where it can be written so (invalid times and lone surrogates cannot), else as base64.</summary>
    private static string Describe(IMessage request)
    {
        string text;
        try
        {
            text = JsonFormatter.Default.Format(request);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            text = "base64 " + Convert.ToBase64String(request.ToByteArray());
        }

        return text.Length <= 600 ? text : text[..600] + $"… ({text.Length} chars)";
    }

    /// <summary>The server's gRPC receive limit (ProcurementHost).</summary>
    private const int MaxMessageBytes = 16 * 1024 * 1024;

    private static int StableHash(string text) => text.Aggregate(17, (h, c) => unchecked((h * 31) + c));
}
