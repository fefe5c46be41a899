using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Api;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Http;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// The API over HTTP/JSON: the routes of the protos' google.api.http rules, on the gRPC port, with the
/// same keys, tenants, errors and idempotency as gRPC.
/// </summary>
public sealed partial class HttpJsonTests : IAsyncLifetime
{
    private static readonly ServiceDescriptor[] Services = [ContractService.Descriptor, AllocationService.Descriptor, SlaService.Descriptor];

    private ServerHarness _server = null!;
    private HttpClient _http = null!;

    public static TheoryData<string> UnaryMethods => new(Services.SelectMany(s => s.Methods)
        .Where(m => !m.IsClientStreaming && !m.IsServerStreaming).Select(m => m.FullName));

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        _http = Client(HttpVersion.Version11);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public void EveryUnaryRpc_HasAnHttpRoute_AndNoStreamingRpcHasOne()
    {
        foreach (var method in Services.SelectMany(s => s.Methods))
        {
            var rule = method.GetOptions()?.GetExtension(AnnotationsExtensions.Http);
            var streaming = method.IsClientStreaming || method.IsServerStreaming;
            Assert.True(streaming == (rule is null), $"{method.FullName}: {(streaming ? "a streaming RPC has" : "no")} HTTP route");
        }
    }

    [Fact]
    public async Task Tour_PoolContractAllocationAndStatement_OverHttpJson()
    {
        var pool = await SendAsync(HttpMethod.Post, "/v1/pools", _server.OperatorKey, """
            { "requestId": "pool-1", "poolId": "h100", "displayName": "H100 pool", "region": "us-east-1",
              "acceleratorType": "H100-SXM-80GB", "capacityUnits": "1000" }
            """);
        Assert.Equal(HttpStatusCode.OK, pool.Status);
        Assert.Equal("1000", pool.Body.GetProperty("pool").GetProperty("capacityUnits").GetString());

        var terms = JsonFormatter.Default.Format(Fixtures.H100Terms(_server.Clock.GetUtcNow(), reserved: 600, burst: 100));
        var draft = await SendAsync(HttpMethod.Post, "/v1/contracts", _server.OperatorKey,
            $$"""{ "requestId": "contract-1", "tenantId": "lab-a", "displayName": "Lab A", "terms": {{terms}} }""");
        Assert.Equal(HttpStatusCode.OK, draft.Status);
        var contractId = draft.Body.GetProperty("contract").GetProperty("contractId").GetString();
        // Money keeps every micro: 64-bit integers are JSON strings, as proto3's JSON mapping says.
        Assert.Equal("1250000000000000", draft.Body.GetProperty("contract").GetProperty("terms")
            .GetProperty("monthlyCommitment").GetProperty("amountMicros").GetString());

        var active = await SendAsync(HttpMethod.Post, $"/v1/contracts/{contractId}:activate", _server.OperatorKey, """{ "requestId": "activate-1" }""");
        Assert.Equal(HttpStatusCode.OK, active.Status);
        Assert.Equal("CONTRACT_STATE_ACTIVE", active.Body.GetProperty("contract").GetProperty("state").GetString());

        var customer = await _server.CreateKeyAsync(Role.Customer, "lab-a");
        var granted = await SendAsync(HttpMethod.Post, "/v1/allocations", customer,
            $$"""{ "requestId": "alloc-1", "contractId": "{{contractId}}", "poolId": "h100", "units": "200" }""");
        Assert.Equal(HttpStatusCode.OK, granted.Status);
        var allocation = granted.Body.GetProperty("allocation");
        Assert.Equal("ALLOCATION_STATE_ACTIVE", allocation.GetProperty("state").GetString());
        var allocationId = allocation.GetProperty("allocationId").GetString();

        _server.Clock.Advance(TimeSpan.FromHours(3));
        var released = await SendAsync(HttpMethod.Post, $"/v1/allocations/{allocationId}:release", customer, """{ "requestId": "release-1" }""");
        Assert.Equal(HttpStatusCode.OK, released.Status);
        Assert.Equal("ALLOCATION_STATE_RELEASED", released.Body.GetProperty("allocation").GetProperty("state").GetString());

        var now = _server.Clock.GetUtcNow();
        var statement = await SendAsync(HttpMethod.Get, $"/v1/contracts/{contractId}/statements/{now.Year}/{now.Month}", customer);
        Assert.Equal(HttpStatusCode.OK, statement.Status);
        var overGrpc = await _server.Contracts(customer).GetStatementAsync(new GetStatementRequest
        {
            ContractId = contractId, Month = new BillingMonth { Year = now.Year, Month = now.Month },
        });
        Assert.Equal(overGrpc, JsonParser.Default.Parse<GetStatementResponse>(statement.Body.GetRawText()));
        Assert.Equal("600", statement.Body.GetProperty("statement").GetProperty("metrics").GetProperty("guaranteedGpuHours").GetString());
    }

    [Theory]
    [MemberData(nameof(UnaryMethods))]
    public async Task NoKey_IsUnauthorized_AsOverGrpc(string method)
    {
        var (verb, path, body) = Route(method);
        var reply = await SendAsync(verb, path, key: null, body);
        Assert.Equal(HttpStatusCode.Unauthorized, reply.Status);
        Assert.Equal((int)StatusCode.Unauthenticated, reply.Body.GetProperty("code").GetInt32());
        Assert.Equal("API_KEY_MISSING", Reason(reply.Body));
    }

    [Theory]
    [MemberData(nameof(UnaryMethods))]
    public async Task UnknownKey_IsUnauthorized_AsOverGrpc(string method)
    {
        var (verb, path, body) = Route(method);
        var reply = await SendAsync(verb, path, "pk_not-a-real-key", body);
        Assert.Equal(HttpStatusCode.Unauthorized, reply.Status);
        Assert.Equal("API_KEY_INVALID", Reason(reply.Body));
    }

    [Theory]
    [MemberData(nameof(UnaryMethods))]
    public async Task EachRole_IsAllowedOrDeniedByThePolicy_AsOverGrpc(string method)
    {
        var (verb, path, body) = Route(method);
        var grpcName = $"/{method[..method.LastIndexOf('.')]}/{method[(method.LastIndexOf('.') + 1)..]}";
        foreach (var role in new[] { Role.Operator, Role.Customer, Role.Meter })
        {
            var key = role == Role.Operator ? _server.OperatorKey : await _server.CreateKeyAsync(role, role == Role.Customer ? "lab-a" : null);
            var reply = await SendAsync(verb, path, key, body);
            if (MethodPolicies.Allowed[grpcName].Contains(role))
            {
                Assert.NotEqual(HttpStatusCode.Forbidden, reply.Status);
                Assert.NotEqual(HttpStatusCode.Unauthorized, reply.Status);
            }
            else
            {
                Assert.Equal(HttpStatusCode.Forbidden, reply.Status);
                Assert.Equal("ROLE_NOT_ALLOWED", Reason(reply.Body));
            }
        }
    }

    [Fact]
    public async Task AnotherTenantsContract_IsNotFound_AsOverGrpc()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var otherTenant = await _server.CreateKeyAsync(Role.Customer, "lab-b");

        var overHttp = await SendAsync(HttpMethod.Get, $"/v1/contracts/{contract.ContractId}", otherTenant);
        var overGrpc = await Rpc.FailsWith(StatusCode.NotFound,
            _server.Contracts(otherTenant).GetContractAsync(new GetContractRequest { ContractId = contract.ContractId }));

        Assert.Equal(HttpStatusCode.NotFound, overHttp.Status);
        Assert.Equal((int)overGrpc.StatusCode, overHttp.Body.GetProperty("code").GetInt32());
        Assert.Equal(overGrpc.Status.Detail, overHttp.Body.GetProperty("message").GetString());
        Assert.Equal(overGrpc.Reason(), Reason(overHttp.Body));

        var listed = await SendAsync(HttpMethod.Get, "/v1/contracts", otherTenant);
        Assert.Equal(HttpStatusCode.OK, listed.Status);
        Assert.False(listed.Body.TryGetProperty("contracts", out var contracts) && contracts.GetArrayLength() > 0);
    }

    [Fact]
    public async Task InvalidFields_AreRefusedWithTheirNames_AsOverGrpc()
    {
        var reply = await SendAsync(HttpMethod.Post, "/v1/pools", _server.OperatorKey, """{ "requestId": "p", "poolId": "Not A Pool" }""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_FIELD", Reason(reply.Body));
        var fields = Details(reply.Body, "google.rpc.BadRequest").GetProperty("fieldViolations").EnumerateArray()
            .Select(v => v.GetProperty("field").GetString()).ToList();
        Assert.Equal(["pool_id", "display_name", "region", "accelerator_type"], fields);
    }

    [Theory]
    [InlineData("""{ "requestId": "p", "poolId": """, "Unexpected end of document")]
    [InlineData("""{ "requestId": "p", "poolIdd": "h100" }""", "Unknown field: poolIdd")]
    [InlineData("""{ "requestId": "p", "capacityUnits": "lots" }""", "Invalid numeric value")]
    [InlineData("""[ "h100" ]""", "Expected an object")]
    public async Task MalformedJson_IsABadRequestThatSaysWhatIsWrong(string body, string says)
    {
        var reply = await SendAsync(HttpMethod.Post, "/v1/pools", _server.OperatorKey, body);

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal((int)StatusCode.InvalidArgument, reply.Body.GetProperty("code").GetInt32());
        Assert.Equal("INVALID_JSON", Reason(reply.Body));
        Assert.Contains("not a valid CreatePoolRequest in JSON", reply.Body.GetProperty("message").GetString());
        Assert.Contains(says, reply.Body.GetProperty("message").GetString());
        var pools = await _server.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest());
        Assert.Empty(pools.Pools);
    }

    [Fact]
    public async Task ReplayedRequestId_GetsTheSameResponse_AndOneEffect()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var body = $$"""{ "requestId": "alloc-replayed", "contractId": "{{contract.ContractId}}", "poolId": "{{Fixtures.H100}}", "units": "10" }""";

        var first = await SendAsync(HttpMethod.Post, "/v1/allocations", _server.OperatorKey, body);
        var again = await SendAsync(HttpMethod.Post, "/v1/allocations", _server.OperatorKey, body);
        var changed = await SendAsync(HttpMethod.Post, "/v1/allocations", _server.OperatorKey, body.Replace("\"10\"", "\"11\""));

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(first.Body.GetRawText(), again.Body.GetRawText());
        Assert.Equal(HttpStatusCode.BadRequest, changed.Status);
        Assert.Equal("REQUEST_ID_REUSED", Reason(changed.Body));
        var status = await _server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(10, status.ActiveUnits);
    }

    [Fact]
    public async Task StaleEtag_IsConflict_AndQueryParametersPage()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var draft = await Fixtures.CreateContractAsync(_server, "lab-a");

        var stale = await SendAsync(HttpMethod.Post, $"/v1/contracts/{draft.ContractId}:activate", _server.OperatorKey,
            """{ "requestId": "activate-stale", "etag": "not-the-etag" }""");
        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        Assert.Equal((int)StatusCode.Aborted, stale.Body.GetProperty("code").GetInt32());
        Assert.Equal("ETAG_MISMATCH", Reason(stale.Body));

        var firstPage = await SendAsync(HttpMethod.Get, "/v1/pools?page_size=1", _server.OperatorKey);
        var token = firstPage.Body.GetProperty("nextPageToken").GetString();
        var secondPage = await SendAsync(HttpMethod.Get, $"/v1/pools?pageSize=1&pageToken={Uri.EscapeDataString(token!)}", _server.OperatorKey);
        Assert.Equal([Fixtures.H100], firstPage.Body.GetProperty("pools").EnumerateArray().Select(p => p.GetProperty("poolId").GetString()));
        Assert.Equal([Fixtures.H200], secondPage.Body.GetProperty("pools").EnumerateArray().Select(p => p.GetProperty("poolId").GetString()));
    }

    [Fact]
    public void DesignDoc_ListsEveryRoute()
    {
        var design = File.ReadAllText(Path.Combine(Repository.Root, "docs", "design.md"));
        var listed = DocRouteRow().Matches(design).Select(m => $"{m.Groups[1].Value} {m.Groups[2].Value} {m.Groups[3].Value}").Order().ToList();
        var routes = Services.SelectMany(s => s.Methods).Where(m => !m.IsClientStreaming && !m.IsServerStreaming).Select(m =>
        {
            var rule = m.GetOptions().GetExtension(AnnotationsExtensions.Http);
            var (verb, path) = (rule.PatternCase.ToString().ToUpperInvariant(), rule.Get + rule.Post + rule.Patch + rule.Put + rule.Delete);
            return $"{verb} {path} {m.Service.Name}.{m.Name}";
        }).Order().ToList();
        Assert.Equal(routes, listed);
    }

    [Fact]
    public async Task OnePort_ServesHttp11AndHttp2Json_AndGrpc()
    {
        await Fixtures.CreatePoolsAsync(_server);
        using var http2 = Client(HttpVersion.Version20);

        var overHttp11 = await SendAsync(HttpMethod.Get, "/v1/pools", _server.OperatorKey, client: _http);
        var overHttp2 = await SendAsync(HttpMethod.Get, "/v1/pools", _server.OperatorKey, client: http2);
        var overGrpc = await _server.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest());

        Assert.Equal(HttpVersion.Version11, overHttp11.Version);
        Assert.Equal(HttpVersion.Version20, overHttp2.Version);
        Assert.Equal(overHttp11.Body.GetRawText(), overHttp2.Body.GetRawText());
        Assert.Equal(overGrpc, JsonParser.Default.Parse<ListPoolsResponse>(overHttp2.Body.GetRawText()));
        Assert.Equal(2, overGrpc.Pools.Count);
    }

    [Fact]
    public async Task TurnedOff_TheServerSpeaksGrpcAlone()
    {
        await using var grpcOnly = await ServerHarness.StartAsync(extraArgs: ["--Procurement:HttpJson=false"]);
        using var http11 = new HttpClient { BaseAddress = new Uri(grpcOnly.Address) };
        using var http2 = new HttpClient { BaseAddress = new Uri(grpcOnly.Address), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        // Kestrel answers an HTTP/1.1 request on an HTTP/2-only endpoint with a bare refusal.
        Assert.Equal(HttpStatusCode.BadRequest, (await http11.GetAsync("/v1/pools")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http2.GetAsync("/v1/pools")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http2.GetAsync("/openapi/v1.json")).StatusCode);
        Assert.Empty((await grpcOnly.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest())).Pools);
    }

    [Fact]
    public async Task OpenApiDocument_IsServed_AndTheCommittedCopyIsCurrent()
    {
        using var reply = await _http.GetAsync(HttpJson.OpenApiRoute.Replace("{documentName}", HttpJson.DocumentName));
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var served = (await reply.Content.ReadAsStringAsync()).ReplaceLineEndings("\n").TrimEnd() + "\n";
        using (var document = JsonDocument.Parse(served))
        {
            var paths = document.RootElement.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
            Assert.Contains("/v1/contracts/{contractId}:activate", paths);
            Assert.Contains("/v1/contracts/{contractId}/statements/{month.year}/{month.month}", paths);
        }

        var committed = Path.Combine(Repository.Root, "docs", "openapi.json");
        if (Environment.GetEnvironmentVariable("PROCUREMENT_UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(committed, served);
        }
        Assert.True(File.Exists(committed) && await File.ReadAllTextAsync(committed) == served,
            "docs/openapi.json differs from the served document; regenerate it: PROCUREMENT_UPDATE_OPENAPI=1 dotnet test --filter OpenApiDocument");
    }

    private HttpClient Client(Version version) => new()
    {
        BaseAddress = new Uri(_server.Address),
        DefaultRequestVersion = version,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    /// <summary>An HTTP request for a method's route: path variables filled with stand-ins, "{}" as the body.</summary>
    private static (HttpMethod Verb, string Path, string? Body) Route(string method)
    {
        var descriptor = Services.SelectMany(s => s.Methods).Single(m => m.FullName == method);
        var rule = descriptor.GetOptions().GetExtension(AnnotationsExtensions.Http);
        var (verb, template) = rule.PatternCase switch
        {
            HttpRule.PatternOneofCase.Get => (HttpMethod.Get, rule.Get),
            HttpRule.PatternOneofCase.Post => (HttpMethod.Post, rule.Post),
            HttpRule.PatternOneofCase.Patch => (HttpMethod.Patch, rule.Patch),
            HttpRule.PatternOneofCase.Put => (HttpMethod.Put, rule.Put),
            HttpRule.PatternOneofCase.Delete => (HttpMethod.Delete, rule.Delete),
            _ => throw new InvalidOperationException($"{method}: no HTTP verb"),
        };
        var path = PathVariable().Replace(template, m => m.Groups[1].Value switch
        {
            var v when v.EndsWith(".year", StringComparison.Ordinal) => "2026",
            var v when v.EndsWith(".month", StringComparison.Ordinal) => "3",
            _ => "x",
        });
        return (verb, path, rule.Body.Length > 0 ? "{}" : null);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body, Version Version)> SendAsync(
        HttpMethod verb, string path, string? key, string? json = null, HttpClient? client = null)
    {
        client ??= _http;
        using var request = new HttpRequestMessage(verb, path) { Version = client.DefaultRequestVersion, VersionPolicy = client.DefaultVersionPolicy };
        if (key is not null)
        {
            request.Headers.Authorization = new("Bearer", key);
        }
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        using var reply = await client.SendAsync(request);
        var text = await reply.Content.ReadAsStringAsync();
        return (reply.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), reply.Version);
    }

    private static string? Reason(JsonElement status) => Details(status, "google.rpc.ErrorInfo").GetProperty("reason").GetString();

    private static JsonElement Details(JsonElement status, string type) =>
        status.GetProperty("details").EnumerateArray().Single(d => d.GetProperty("@type").GetString() == $"type.googleapis.com/{type}");

    [GeneratedRegex(@"^\| `([A-Z]+) (\S+)` \| `(\w+\.\w+)` \|$", RegexOptions.Multiline)]
    private static partial Regex DocRouteRow();

    [GeneratedRegex(@"\{([a-z_.]+)\}")]
    private static partial Regex PathVariable();
}
