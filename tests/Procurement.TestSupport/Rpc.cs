using Google.Rpc;
using Grpc.Core;

namespace Procurement.TestSupport;

/// <summary>Assertions on the rich error model.</summary>
public static class Rpc
{
    public static async Task<RpcException> FailsWith(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(e.StatusCode == code, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }

    public static Task<RpcException> FailsWith<T>(StatusCode code, AsyncUnaryCall<T> call) => FailsWith(code, async () => await call);

    public static async Task<RpcException> FailsWith<T>(StatusCode code, string reason, AsyncUnaryCall<T> call)
    {
        var e = await FailsWith(code, async () => await call);
        Assert.Equal(reason, e.Reason());
        return e;
    }

    public static string? Reason(this RpcException e)
    {
        var info = e.GetRpcStatus()?.GetDetail<ErrorInfo>();
        if (info is not null)
        {
            Assert.Equal("procurement", info.Domain);
        }

        return info?.Reason;
    }

    public static IReadOnlyDictionary<string, string> Metadata(this RpcException e) =>
        e.GetRpcStatus()?.GetDetail<ErrorInfo>()?.Metadata ?? (IReadOnlyDictionary<string, string>)new Dictionary<string, string>();

    public static IReadOnlyList<string> BadFields(this RpcException e) =>
        e.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations.Select(v => v.Field).ToList() ?? [];

    public static IReadOnlyList<string> PreconditionSubjects(this RpcException e) =>
        e.GetRpcStatus()?.GetDetail<PreconditionFailure>()?.Violations.Select(v => v.Subject).ToList() ?? [];

    public static string NewRequestId() => Guid.NewGuid().ToString();
}
