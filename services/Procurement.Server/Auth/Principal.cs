using Grpc.Core;

namespace Procurement.Server.Auth;

public enum Role
{
    Operator,
    Customer,
    Meter,
}

/// <summary>Who is calling: the key's id (never the key), its role and, for customers, its one tenant.</summary>
public sealed record Principal(string KeyId, Role Role, string? TenantId)
{
    public string RoleName => RoleNames.Of(Role);

    /// <summary>Request ids are unique per scope: a tenant's keys share one, operators and meters one each.</summary>
    public string IdempotencyScope => Role == Role.Customer ? $"tenant:{TenantId}" : RoleName;

    /// <summary>True when this principal may see resources of <paramref name="tenantId"/>.</summary>
    public bool CanSeeTenant(string tenantId) => Role != Role.Customer || TenantId == tenantId;
}

public static class RoleNames
{
    public static string Of(Role role) => role switch
    {
        Role.Operator => "operator",
        Role.Customer => "customer",
        Role.Meter => "meter",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    public static bool TryParse(string? name, out Role role)
    {
        switch (name)
        {
            case "operator": role = Role.Operator; return true;
            case "customer": role = Role.Customer; return true;
            case "meter": role = Role.Meter; return true;
            default: role = default; return false;
        }
    }
}

public static class PrincipalContextExtensions
{
    private const string Key = "procurement.principal";

    public static void SetPrincipal(this ServerCallContext context, Principal principal) => context.UserState[Key] = principal;

    /// <summary>The authenticated caller; the auth interceptor guarantees one for every procurement method.</summary>
    public static Principal GetPrincipal(this ServerCallContext context) =>
        context.UserState.TryGetValue(Key, out var p) && p is Principal principal
            ? principal
            : throw new InvalidOperationException("No authenticated principal on this call.");
}
